"""GRADE: every distinct failing input covered by a case or skipped, each case weighted."""
