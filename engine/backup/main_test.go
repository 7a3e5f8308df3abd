package backup

import (
	"os"
	"testing"

	"github.com/akosha/akosha/internal/s3test"
)

// The S3 tests share one versitygw server (s3test.Shared).
func TestMain(m *testing.M) {
	code := m.Run()
	s3test.StopShared()
	os.Exit(code)
}
