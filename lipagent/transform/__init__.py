"""Stage 2, the transform from video to mosaic: decoding, frame sampling, Face Mesh mouth crops, the mosaic, the
speech-span detector, and the per-clip pipeline that ties them."""
