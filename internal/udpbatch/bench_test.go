package udpbatch

import (
	"testing"
)

// BenchmarkReadBatch reads 32 datagrams a loop from a socket on loopback;
// allocs/op divided by 32 is the read path's allocations per datagram.
// The cost includes sending them.
func BenchmarkReadBatch(b *testing.B) {
	c := listenOne(b, Options{})
	peer := dial(b, c)
	const n = 32
	ds := make([]Datagram, n)
	for i := range ds {
		ds[i].Buf = make([]byte, slotSize)
	}
	pkt := make([]byte, 100)
	b.ReportAllocs()
	for b.Loop() {
		for i := 0; i < n; i++ {
			peer.Write(pkt)
		}
		for got := 0; got < n; {
			k, err := c.ReadBatch(ds[:n-got])
			if err != nil {
				b.Fatal(err)
			}
			got += k
		}
	}
}

// BenchmarkBatchWrite queues and sends 64 datagrams a loop, 32 each to
// two addresses, one run of equal sizes (coalesced where the kernel can)
// and one of growing sizes.
func BenchmarkBatchWrite(b *testing.B) {
	c := listenOne(b, Options{GSO: true})
	to1, _ := sink(b)
	to2, _ := sink(b)
	batch := NewBatch(c, 64, 256, slotSize)
	payload := make([]byte, 200)
	b.ReportAllocs()
	for b.Loop() {
		for i := 0; i < 32; i++ {
			batch.Add(append(batch.Slot(), payload[:100]...), to1)
			batch.Add(append(batch.Slot(), payload[:60+i]...), to2)
		}
		batch.Flush()
	}
}
