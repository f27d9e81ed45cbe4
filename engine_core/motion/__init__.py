"""Motion space: per-frame facial-animation channels (the motion Actor's latents) and the renderer that turns a
portrait and one frame of channels into a picture by moving the portrait's own pixels."""
