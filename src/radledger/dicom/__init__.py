"""DICOM: the only package that imports pydicom (and, later, pynetdicom)."""
