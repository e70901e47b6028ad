package track

import "fmt"

// maxNameLen is the OpenTelemetry limit on instrument names.
const maxNameLen = 255

// validateName reports whether name follows the OpenTelemetry instrument-name
// syntax: an ASCII letter, then up to 254 letters, digits, '_', '.', '-' or '/'.
func validateName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty name", ErrInvalidName)
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("%w: %q is longer than %d bytes", ErrInvalidName, name[:32]+"...", maxNameLen)
	}
	if !isLetter(name[0]) {
		return fmt.Errorf("%w: %q must start with a letter", ErrInvalidName, name)
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if !isLetter(c) && !(c >= '0' && c <= '9') && c != '_' && c != '.' && c != '-' && c != '/' {
			return fmt.Errorf("%w: %q has %q at byte %d; allowed are letters, digits, '_', '.', '-' and '/'", ErrInvalidName, name, c, i)
		}
	}
	return nil
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
