"""Corrections on the raw mosaic before a DNG is written: the flat field (flat), the bracket's linear merge of
exposure groups (bracket), and the white level and crop the DNG then says (levels)."""
