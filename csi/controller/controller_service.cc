// Placeholder: the controller service is being written.
