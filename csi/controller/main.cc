// Placeholder: rbd-nbdd-csi-controller's main() is being written.
int main() { return 1; }
