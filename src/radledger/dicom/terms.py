"""Values the DICOM standard defines for the two code strings radledger writes in clear.

Anything else found in a file is written as ``"invalid"``: a code-string-shaped value such as
a surname must never reach the ledger or the screen. Transcribed from PS3.3 (2025b):
C.7.3.1.1.1 Modality (defined terms, current and retired) and C.7.6.3.1.2 Photometric
Interpretation (enumerated values, current and retired).
"""

from __future__ import annotations

MODALITIES = frozenset("""
AR ASMT AU BDUS BI BMD CFM CR CT CTPROTOCOL DG DMS DOC DX ECG EEG EMG EOG EPS ES FID GM HC HD IO
IOL IVOCT IVUS KER KO LEN LS M3D MG MR NM OAM OCT OP OPM OPT OPTBSV OPTENF OPV OSS OT PA PLAN
POS PR PT PX REG RESP RF RG RTDOSE RTIMAGE RTINTENT RTPLAN RTRAD RTRECORD RTSEGANN RTSTRUCT RWV
SEG SM SMR SR SRF STAIN TEXTUREMAP TG US VA XA XAPROTOCOL XC
AS CD CF CP CS DD DF DM DS EC FA FS LP MA MS OPR ST VF
""".split())

PHOTOMETRIC_INTERPRETATIONS = frozenset({
    "MONOCHROME1", "MONOCHROME2", "PALETTE COLOR", "RGB", "YBR_FULL", "YBR_FULL_422",
    "YBR_PARTIAL_420", "YBR_ICT", "YBR_RCT", "XYB",
    "HSV", "ARGB", "CMYK", "YBR_PARTIAL_422",
})
