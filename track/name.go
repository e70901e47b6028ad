package track

import (
	"fmt"

	"github.com/trackhq/track/internal/conventions"
)

// validateName reports whether name follows the OpenTelemetry instrument-name
// syntax: an ASCII letter, then up to 254 letters, digits, '_', '.', '-' or '/'.
// The error wraps ErrInvalidName.
func validateName(name string) error {
	if err := conventions.ValidateName(name); err != nil {
		return fmt.Errorf("track: %w", err)
	}
	return nil
}
