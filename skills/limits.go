package skills

// Limits caps what an archive may expand to. Caps are checked on the bytes
// actually read from the decompressor, so a lying header cannot bypass them.
type Limits struct {
	// MaxArchiveBytes caps the uploaded (compressed) archive.
	MaxArchiveBytes int64
	// MaxTotalBytes caps the sum of all decompressed file contents.
	MaxTotalBytes int64
	// MaxFileBytes caps one decompressed file.
	MaxFileBytes int64
	// MaxFiles caps the number of entries (files, directories and links).
	MaxFiles int
	// MaxPathLen caps the length of an entry path inside the skill folder.
	MaxPathLen int
	// MaxDepth caps the number of path components of an entry.
	MaxDepth int
}

// DefaultLimits are generous for skills (prompts, scripts, small assets) and
// small enough that a validation sandbox and a snapshot stay cheap.
func DefaultLimits() Limits {
	return Limits{
		MaxArchiveBytes: 16 << 20,
		MaxTotalBytes:   64 << 20,
		MaxFileBytes:    16 << 20,
		MaxFiles:        1000,
		MaxPathLen:      255,
		MaxDepth:        16,
	}
}
