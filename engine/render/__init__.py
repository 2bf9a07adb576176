"""Everything that touches GL: compositor, texture uploads, window and headless drivers."""
