"""Models run on full frames (person detection, person segmentation) and the torch device they run on."""
