// Placeholder: the librbd CephStore is being written (librbd_store.h).
