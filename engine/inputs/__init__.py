"""Live video in: an NDI source or a camera, shown as a layer through effects and transitions."""
