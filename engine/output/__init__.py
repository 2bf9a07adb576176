"""Program out to the rest of the rig: NDI, virtual camera, Syphon/Spout and recording."""
