package logfmt

import "errors"

var (
	// ErrUnknownVersion is returned for a segment written in a format
	// version this build does not read.
	ErrUnknownVersion = errors.New("unknown segment format version")
	// ErrCorrupt is returned for a segment or manifest that is damaged or
	// not ours.
	ErrCorrupt = errors.New("corrupt segment")
)
