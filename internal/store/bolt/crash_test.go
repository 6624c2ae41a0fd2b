package bolt

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/holdfast/holdfast/internal/store"
)

// The crash test re-executes the test binary. With crashChildEnv set to a
// store path, TestCrashKill9 runs the writer (crashChild) instead of the test.
const crashChildEnv = "HOLDFAST_STORE_CRASH_CHILD"

const (
	crashWriters  = 16   // goroutines writing in the child
	crashAcks     = 2000 // acknowledgements read before each SIGKILL
	crashRounds   = 3    // kills of the same file
	crashValueLen = 200
)

// Every Txn n of writer g (n = 0, 1, 2, ...) atomically:
//   - puts crash/<g>/<n> = crashValue(g, n)
//   - puts crash/<g>/<n>/idx = "i"
//   - when n%10 == 0 and n >= 5, deletes crash/<g>/<n-5>/idx
//   - puts ctr/<g> = n, compared with the ModRev of its previous write
//
// so the writers' progress can be checked exactly after a crash.
func crashMainKey(g, n int) string { return fmt.Sprintf("crash/%02d/%06d", g, n) }
func crashIdxKey(g, n int) string  { return crashMainKey(g, n) + "/idx" }
func crashCtrKey(g int) string     { return fmt.Sprintf("ctr/%02d", g) }
func crashValue(g, n int) []byte {
	v := bytes.Repeat([]byte{byte('a' + (g+n)%26)}, crashValueLen)
	return fmt.Appendf(v[:0:0], "%d/%d/%s", g, n, v)
}

// crashChild writes until killed, printing "ack <g> <n> <rev> ok" after each
// Txn returned successfully. It never returns.
func crashChild(path string) {
	die := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "crash child: "+format+"\n", args...)
		os.Exit(3)
	}
	s, err := Open(path, Options{}) // fsync on: this is what is tested
	if err != nil {
		die("open: %v", err)
	}
	ctx := context.Background()
	var outMu sync.Mutex
	for g := range crashWriters {
		// Resume after the last Txn of this writer that reached the disk.
		kv, ok, err := s.Get(ctx, crashCtrKey(g))
		if err != nil {
			die("get counter: %v", err)
		}
		n, prevRev := 0, int64(0)
		if ok {
			last, err := strconv.Atoi(string(kv.Value))
			if err != nil {
				die("counter %q: %v", kv.Value, err)
			}
			n, prevRev = last+1, kv.ModRev
		}
		go func() {
			for ; ; n++ {
				ops := []store.Op{
					store.Put(crashMainKey(g, n), crashValue(g, n)),
					store.Put(crashIdxKey(g, n), []byte("i")),
					store.Put(crashCtrKey(g), []byte(strconv.Itoa(n))).If(prevRev),
				}
				if n%10 == 0 && n >= 5 {
					ops = append(ops, store.Del(crashIdxKey(g, n-5)))
				}
				rev, err := s.Txn(ctx, ops)
				if err != nil {
					die("writer %d txn %d: %v", g, n, err)
				}
				prevRev = rev
				line := fmt.Sprintf("ack %d %d %d ok\n", g, n, rev)
				outMu.Lock()
				_, err = os.Stdout.WriteString(line) // one write(2), below PIPE_BUF: atomic
				outMu.Unlock()
				if err != nil {
					die("stdout: %v", err)
				}
			}
		}()
	}
	select {}
}

func TestCrashKill9(t *testing.T) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	if testing.Short() {
		t.Skip("crash test re-executes the test binary; skipped with -short")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	acked := make([]map[int]int, crashWriters) // writer -> n -> rev
	for g := range acked {
		acked[g] = make(map[int]int)
	}
	total := 0
	for round := range crashRounds {
		got := runCrashChild(t, path)
		for g, m := range got {
			for n, rev := range m {
				acked[g][n] = rev
			}
			total += len(m)
		}
		t.Logf("round %d: %d acknowledged Txns before SIGKILL (%d in all)", round, countAcks(got), total)
		verifyCrash(t, path, acked, total)
	}
}

func countAcks(m []map[int]int) int {
	c := 0
	for _, x := range m {
		c += len(x)
	}
	return c
}

// runCrashChild runs one child on path, kills it with SIGKILL once it has
// acknowledged crashAcks Txns, and returns every acknowledgement it printed.
func runCrashChild(t *testing.T, path string) []map[int]int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashKill9$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	got := make([]map[int]int, crashWriters)
	for g := range got {
		got[g] = make(map[int]int)
	}
	count, killed := 0, false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		// "ack <g> <n> <rev> ok"; a line cut short is not an acknowledgement.
		f := strings.Fields(sc.Text())
		if len(f) != 5 || f[0] != "ack" || f[4] != "ok" {
			t.Logf("ignoring incomplete line %q", sc.Text())
			continue
		}
		g, err1 := strconv.Atoi(f[1])
		n, err2 := strconv.Atoi(f[2])
		rev, err3 := strconv.Atoi(f[3])
		if err := errors.Join(err1, err2, err3); err != nil || g < 0 || g >= crashWriters {
			t.Fatalf("bad ack line %q: %v", sc.Text(), err)
		}
		got[g][n] = rev
		count++
		if count >= crashAcks && !killed {
			// Keep reading after the kill: lines already written are acks too.
			if err := cmd.Process.Kill(); err != nil { // SIGKILL
				t.Fatal(err)
			}
			killed = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child exited after %d acks without being killed: %v\nstderr:\n%s", count, err, stderr.String())
	}
	if ee, ok := errors.AsType[*exec.ExitError](err); !ok || ee.Exited() {
		t.Fatalf("child did not die from the signal: %v\nstderr:\n%s", err, stderr.String())
	}
	return got
}

// verifyCrash reopens the store and checks every acknowledged Txn is there,
// atomically, and that nothing else is.
func verifyCrash(t *testing.T, path string, acked []map[int]int, total int) {
	t.Helper()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer s.Close()
	if err := s.Check(); err != nil {
		t.Fatalf("store inconsistent after SIGKILL: %v", err)
	}
	ctx := context.Background()
	if s.Rev() < int64(total) {
		t.Fatalf("Rev() = %d < %d acknowledged Txns", s.Rev(), total)
	}
	kvs, rangeRev, err := s.Range(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if rangeRev != s.Rev() {
		t.Fatalf("Range rev %d != Rev() %d", rangeRev, s.Rev())
	}
	byKey := make(map[string]store.KV, len(kvs))
	mains := 0
	for _, kv := range kvs {
		byKey[kv.Key] = kv
		if strings.HasPrefix(kv.Key, "crash/") && !strings.HasSuffix(kv.Key, "/idx") {
			mains++
		}
	}
	// Every Txn that reached the disk wrote one main key and got one
	// revision; no other Txns exist.
	if int64(mains) != s.Rev() {
		t.Fatalf("%d main keys but Rev() = %d", mains, s.Rev())
	}

	for g := range crashWriters {
		lastAck := -1
		for n, rev := range acked[g] {
			lastAck = max(lastAck, n)
			kv, ok := byKey[crashMainKey(g, n)]
			if !ok {
				t.Fatalf("acknowledged Txn lost: writer %d n %d rev %d", g, n, rev)
			}
			if !bytes.Equal(kv.Value, crashValue(g, n)) || kv.ModRev != int64(rev) {
				t.Fatalf("%s = %q@%d, want its value @%d", kv.Key, kv.Value, kv.ModRev, rev)
			}
			idx, ok := byKey[crashIdxKey(g, n)]
			_, deleterAcked := acked[g][n+5]
			switch {
			case n%10 == 5 && deleterAcked:
				if ok {
					t.Fatalf("%s present; its delete (n %d) was acknowledged", idx.Key, n+5)
				}
			case n%10 == 5:
				// The deleting Txn may or may not have reached the disk.
			case !ok || idx.ModRev != int64(rev):
				t.Fatalf("%s missing or at %d, want @%d (same Txn as its main key)", crashIdxKey(g, n), idx.ModRev, rev)
			}
		}
		if lastAck < 0 {
			continue
		}
		// The counter is at the last acknowledged Txn, or one past it (a Txn
		// that was durable but not yet acknowledged at the kill).
		ctr, ok := byKey[crashCtrKey(g)]
		if !ok {
			t.Fatalf("writer %d: counter missing", g)
		}
		c, err := strconv.Atoi(string(ctr.Value))
		if err != nil || c < lastAck || c > lastAck+1 {
			t.Fatalf("writer %d: counter %q, last acknowledged %d", g, ctr.Value, lastAck)
		}
		main, ok := byKey[crashMainKey(g, c)]
		if !ok || main.ModRev != ctr.ModRev {
			t.Fatalf("writer %d: counter %d@%d without its main key (%v)", g, c, ctr.ModRev, main)
		}
		if _, ok := byKey[crashMainKey(g, c+1)]; ok {
			t.Fatalf("writer %d: key past the counter exists", g)
		}
	}
}
