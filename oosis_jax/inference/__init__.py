"""From an image to ordered instances (paper Sec. 3.1-3.2, 5.4): forward pass, NMS, CRF inputs, CRF, files."""
