package loader

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestReadFileNeverBlocksOnFIFO swaps one name between a regular file and a FIFO as fast as
// it can while readFile reads it: whatever it finds, readFile must return (an open of a FIFO
// for reading waits for a writer forever, which would hang the watcher and every reload).
func TestReadFileNeverBlocksOnFIFO(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "swap.yaml")
	if err := os.WriteFile(path, []byte("pipeline: [x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	swapped := make(chan int)
	go func() {
		n := 0
		defer func() { swapped <- n }()
		for ; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			tmp := filepath.Join(dir, ".swap.tmp")
			var err error
			if n%2 == 0 {
				err = syscall.Mkfifo(tmp, 0o644)
			} else {
				err = os.WriteFile(tmp, []byte("pipeline: [x\n"), 0o644)
			}
			if err == nil {
				err = os.Rename(tmp, path)
			}
			if err != nil {
				t.Error(err)
				return
			}
		}
	}()
	reads, fifos := 0, 0
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		done := make(chan *fileResult, 1)
		go func() { r, _ := readFile(path, Options{}, nil); done <- r }()
		select {
		case r := <-done:
			reads++
			if r != nil && len(r.errs) == 1 && r.errs[0].Msg == "not a regular file" {
				fifos++
			}
		case <-time.After(5 * time.Second):
			close(stop)
			<-swapped
			// Release the blocked reader: a writer's open lets its open return.
			if w, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				w.Close()
			}
			t.Fatalf("readFile blocked on %s (after %d reads)", path, reads)
		}
	}
	close(stop)
	t.Logf("%d reads during %d swaps, %d saw a FIFO", reads, <-swapped, fifos)
}
