package dispatch_test

import (
	"testing"

	"github.com/taskerops/tasker/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
