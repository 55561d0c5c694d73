"""Herald side by side with its peers on this machine."""
