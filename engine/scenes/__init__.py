"""Scenes: whole looks saved as plain TOML files, recalled with a blend.

``scene`` is the data and its file format, ``blend`` the arithmetic of a recall, ``store`` the folder, its
watcher and the writer thread, ``deck`` what the render thread does with them, and ``stage`` the seam
between the deck and the show loop's compositor, library and director. Only ``stage`` knows the show.
The control page's side is in docs/vj-protocol.md.
"""
