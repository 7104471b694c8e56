package server

import (
	"testing"
	"time"

	"github.com/plenum-voice/plenum/conf"
)

// SlowConfigWrites makes every write of the configuration file take d
// longer and writes hold messages back for at most limit, until the test
// ends.
func SlowConfigWrites(t *testing.T, d, limit time.Duration) {
	oldWrite, oldLimit := writeConfigFile, holdLimit
	writeConfigFile = func(path string, c *conf.Config) error {
		time.Sleep(d)
		return conf.WriteFile(path, c)
	}
	holdLimit = limit
	t.Cleanup(func() { writeConfigFile, holdLimit = oldWrite, oldLimit })
}
