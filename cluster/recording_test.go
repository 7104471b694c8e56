package cluster_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/internal/audiotest"
)

// TestChannelRecordedOnce: a channel marked record is recorded by one
// node of the cluster, the lowest-numbered one alive, with the speech of
// users on the other nodes, though it has nobody in the channel itself;
// users on every node see the recorder's recording flag. When that node
// stops, the next one records.
func TestChannelRecordedOnce(t *testing.T) {
	if _, err := exec.LookPath("opusdec"); err != nil {
		t.Skip("opus-tools not installed (apt-get install opus-tools); scripts/test installs it")
	}
	ns := startNATS(t)
	edit := func(c *conf.Config) {
		c.Server.AllowRecording = true
		c.Lookup("Plenary").Record = true
	}
	var nodes [3]*testNode
	var dirs [3]string
	for i := range nodes {
		dirs[i] = t.TempDir()
		nodes[i] = startNodeIn(t, ns, fmt.Sprintf("node%d", i+1), dirs[i], edit)
		if got := nodes[i].node.Node(); got != uint16(i+1) {
			t.Fatalf("node%d has number %d", i+1, got)
		}
	}
	recordings := func(i int) []string {
		files, _ := filepath.Glob(filepath.Join(dirs[i], "recordings", "Plenary-*.opus"))
		return files
	}
	speakers := []*listener{join(t, nodes[1], "speaker2"), join(t, nodes[2], "speaker3")}
	for _, u := range speakers {
		plenary := channelNamed(t, u.Client, "Plenary")
		if err := u.Move(plenary); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 5*time.Second, "the recorder's flag seen", func() bool {
			st := userNamed(u.Client, "Plenary (recorder)")
			return st != nil && st.GetRecording() && st.GetChannelId() == plenary
		})
	}
	waitUntil(t, 10*time.Second, "node 1 recording", func() bool { return len(recordings(0)) == 1 })
	time.Sleep(500 * time.Millisecond) // node 1's subscription to the plenary's speech follows

	tones := []float64{440, 660}
	var encoders []*audiotest.Speaker
	for _, f := range tones {
		enc, err := audiotest.NewSpeaker(f, 0.3, 20)
		if err != nil {
			t.Fatal(err)
		}
		encoders = append(encoders, enc)
	}
	next := time.Now()
	for seq := range 100 { // 2 s
		for i, u := range speakers {
			frame, err := encoders[i].Next()
			if err != nil {
				t.Fatal(err)
			}
			if err := u.SendAudio(0, uint64(seq), frame, seq == 99, nil); err != nil {
				t.Fatal(err)
			}
		}
		next = next.Add(20 * time.Millisecond)
		time.Sleep(time.Until(next))
	}
	time.Sleep(300 * time.Millisecond)
	nodes[0].stop() // closes its recording

	for i := 1; i < 3; i++ {
		if files := recordings(i); len(files) != 0 {
			t.Errorf("node %d recorded too while node 1 did: %v", i+1, files)
		}
	}
	wav := filepath.Join(t.TempDir(), "rec.wav")
	if out, err := exec.Command("opusdec", "--quiet", "--rate", "48000", recordings(0)[0], wav).CombinedOutput(); err != nil {
		t.Fatalf("opusdec: %v %s", err, out)
	}
	raw, _ := os.ReadFile(wav)
	pcm := make([]int16, (len(raw)-44)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(raw[44+2*i:]))
	}
	for _, f := range tones {
		lvl := audiotest.Level(pcm, f)
		t.Logf("%v Hz at %.3f in node 1's recording of %.2f s", f, lvl, float64(len(pcm))/48000)
		if lvl < 0.05 {
			t.Errorf("%v Hz, spoken on another node, is at %.3f in node 1's recording", f, lvl)
		}
	}

	waitUntil(t, 10*time.Second, "node 2 recording once node 1 is gone", func() bool { return len(recordings(1)) == 1 })
	if files := recordings(2); len(files) != 0 {
		t.Errorf("node 3 records too: %v", files)
	}
	for _, u := range speakers {
		if u.gotText("Recording of this channel has stopped") {
			t.Error("a user was told the recording stopped when it moved to another node")
		}
	}
}
