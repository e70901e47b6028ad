package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// zoneinfoDirs are where tzdata installs the zone files; a path below one of them names its zone.
var zoneinfoDirs = []string{"/usr/share/zoneinfo/", "/usr/lib/zoneinfo/", "/usr/share/lib/zoneinfo/", "/etc/zoneinfo/"}

// environmentZone returns the IANA name of the zone of the environment (lookupEnv is os.LookupEnv
// outside tests), as Go's time.Local finds it on Unix: $TZ when it is set ("" and "UTC" mean UTC, a leading ':' is dropped, a path below a
// zoneinfo directory names the zone under it), else the zone /etc/localtime links to, else the one
// /etc/timezone names. Postgres needs the name, not the rules, since it converts with its own copy
// of the database. It returns "UTC" when no name can be found, and says why in the second value.
func environmentZone(lookupEnv func(string) (string, bool)) (name, note string) {
	if tz, ok := lookupEnv("TZ"); ok {
		tz = strings.TrimPrefix(tz, ":")
		switch {
		case tz == "":
			return "UTC", ""
		case filepath.IsAbs(tz):
			if n := zoneFromPath(tz); n != "" {
				return n, ""
			}
			return "UTC", fmt.Sprintf("TZ=%s is not below a zoneinfo directory; using UTC", tz)
		}
		return tz, ""
	}
	if target, err := filepath.EvalSymlinks("/etc/localtime"); err == nil {
		if n := zoneFromPath(target); n != "" {
			return n, ""
		}
	}
	if b, err := os.ReadFile("/etc/timezone"); err == nil {
		if n := strings.TrimSpace(string(b)); n != "" {
			return n, ""
		}
	}
	return "UTC", "the zone of the environment has no name (set TZ or -tz); using UTC"
}

func zoneFromPath(p string) string {
	for _, dir := range zoneinfoDirs {
		if n, ok := strings.CutPrefix(p, dir); ok && n != "" {
			return strings.TrimPrefix(n, "posix/")
		}
	}
	return ""
}

// loadZone loads the zone named name, for -tz. "Local" is refused: Postgres cannot resolve it.
func loadZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("%q is not a zone name: use an IANA name such as Europe/Berlin, or UTC", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q: use an IANA name such as America/New_York, Asia/Kolkata or UTC", name)
	}
	return loc, nil
}
