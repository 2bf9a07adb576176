"""Control surfaces beyond the keyboard: OSC, MIDI and the VJ page, all speaking the command layer."""
