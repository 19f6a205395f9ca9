"""Data: the built-in and standard-format data sets, preprocessing, augmentation."""
