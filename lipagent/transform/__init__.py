"""The transform from video to mosaic, shared by the dataset builder and every reader: decoding, frame sampling,
mouth crops from face landmarks, the mosaic, the speech-span detector, skip reasons, and the per-clip pipeline that
ties them."""
