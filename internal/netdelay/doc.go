// Package netdelay delays, and optionally drops, the packets that
// nftables hands to a netfilter queue: a stand-in for tc netem on kernels
// built without it, on the kernel's own packet path.
//
// An nftables rule with "queue num N" passes each matching packet to
// userspace through nfnetlink_queue; the kernel keeps the packet and waits
// for a verdict. Where the kernel lacks nft's queue statement (nft_queue)
// but has xtables' NFQUEUE target, AppendQueueRule adds the equivalent
// rule, which the nft command cannot write.
//
// A Delayer binds queue N in a network namespace, holds each packet's
// verdict for a fixed delay and then accepts it, first in first out, so
// the order of the packets is kept. A given share of the
// packets is dropped at once instead (verdict NF_DROP). Only the packets'
// metadata crosses into userspace (copy mode META): the payload stays in
// the kernel.
//
// The netlink messages are written here with golang.org/x/sys/unix; their
// layout is the kernel's uapi header linux/netfilter/nfnetlink_queue.h.
package netdelay
