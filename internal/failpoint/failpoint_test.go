package failpoint

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// TestHelperCrash is run as a child process by TestInjectKills.
func TestHelperCrash(t *testing.T) {
	if os.Getenv("FAILPOINT_HELPER") != "1" {
		t.Skip("run by TestInjectKills")
	}
	for range 3 {
		Inject(PostgresBeforeCommit)
		Inject(ParquetAfterRename)
		os.Stdout.WriteString("passed a round\n")
	}
}

// Without the faultinject tag Inject does nothing; with it, the process dies by SIGKILL at the
// selected hit of the selected failpoint, and says so on stderr.
func TestInjectKills(t *testing.T) {
	run := func(sel string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestHelperCrash$", "-test.v")
		cmd.Env = append(os.Environ(), "FAILPOINT_HELPER=1", EnvVar+"="+sel)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run(ParquetAfterRename + "@2")
	if !Enabled {
		if err != nil || strings.Count(out, "passed a round") != 3 {
			t.Fatalf("without faultinject a failpoint crashed the process: %v\n%s", err, out)
		}
		return
	}
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("want death by SIGKILL, got %v\n%s", err, out)
	}
	if strings.Count(out, "passed a round") != 1 || !strings.Contains(out, "failpoint parquet-after-rename reached (hit 2)") {
		t.Fatalf("crashed at the wrong moment:\n%s", out)
	}
	if out, err := run("no-such-point"); err != nil || strings.Count(out, "passed a round") != 3 {
		t.Fatalf("an unknown failpoint crashed the process: %v\n%s", err, out)
	}
}
