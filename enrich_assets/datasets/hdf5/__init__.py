"""HDF5 datasets: robomimic, LIBERO, ALOHA/ACT and declared layouts; the /enrichments sidecar."""
