//go:build linux

package netdelay

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// From linux/netfilter/nf_tables.h, nf_tables_compat.h and xt_NFQUEUE.h.
const (
	nftMsgNewRule   = 6 // NFT_MSG_NEWRULE
	nftaRuleTable   = 1 // NFTA_RULE_TABLE
	nftaRuleChain   = 2 // NFTA_RULE_CHAIN
	nftaRuleExprs   = 4 // NFTA_RULE_EXPRESSIONS
	nftaListElem    = 1 // NFTA_LIST_ELEM
	nftaExprName    = 1 // NFTA_EXPR_NAME
	nftaExprData    = 2 // NFTA_EXPR_DATA
	nftaTargetName  = 1 // NFTA_TARGET_NAME
	nftaTargetRev   = 2 // NFTA_TARGET_REV
	nftaTargetInfo  = 3 // NFTA_TARGET_INFO
	nfqFlagBypass   = 1 // NFQ_FLAG_BYPASS
	nfqTargetRev    = 3 // struct xt_NFQ_info_v3
	nftablesMsgType = unix.NFNL_SUBSYS_NFTABLES << 8
)

// AppendQueueRule appends to chain of the IPv4 ("ip") nftables table in
// the network namespace at netnsPath (or the caller's, with "") a rule
// that passes every packet to netfilter queue queue, with bypass: while
// no Delayer has bound the queue, packets pass.
//
// It is what the nft rule "queue num N bypass" does, for kernels built
// without nft_queue (CONFIG_NFT_QUEUE) but with xtables' NFQUEUE target
// and nft_compat, which the nft command cannot write. The rule has no
// match of its own: make chain a regular chain that the packets to delay
// reach with "goto" from a base chain, such as
//
//	table ip lab {
//	  chain out { type filter hook output priority 0; oifname "eth0" goto delay; }
//	  chain delay { }
//	}
func AppendQueueRule(netnsPath, table, chain string, queue uint16) error {
	if table == "" || chain == "" {
		return fmt.Errorf("netdelay: a queue rule needs a table and a chain, not %q and %q", table, chain)
	}
	fd, err := socketIn(netnsPath)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.SetNonblock(fd, false); err != nil {
		return fmt.Errorf("netdelay: netlink socket: %w", err)
	}
	tv := unix.NsecToTimeval(int64(ackTimeout / time.Nanosecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("netdelay: netlink socket: %w", err)
	}
	const seq = 1
	if _, err := unix.Write(fd, appendQueueRule(nil, seq, table, chain, queue)); err != nil {
		return fmt.Errorf("netdelay: adding the queue rule: %w", err)
	}
	if err := awaitAck(fd, seq); err != nil {
		return fmt.Errorf("netdelay: adding a queue rule to chain %s of table ip %s: %w", chain, table, err)
	}
	return nil
}

// appendQueueRule appends the transaction that adds the rule: nf_tables
// takes changes only in a batch.
func appendQueueRule(b []byte, seq uint32, table, chain string, queue uint16) []byte {
	b = appendBatchMark(b, unix.NFNL_MSG_BATCH_BEGIN, seq-1)
	start := len(b)
	b = appendNetlinkHeader(b, nftablesMsgType|nftMsgNewRule,
		unix.NLM_F_REQUEST|unix.NLM_F_CREATE|unix.NLM_F_APPEND|unix.NLM_F_ACK, seq)
	b = append(b, unix.NFPROTO_IPV4, unix.NFNETLINK_V0, 0, 0)
	b = appendAttr(b, nftaRuleTable, cString(table))
	b = appendAttr(b, nftaRuleChain, cString(chain))
	exprs := len(b)
	b = appendAttr(b, nftaRuleExprs|unix.NLA_F_NESTED, nil)
	elem := len(b)
	b = appendAttr(b, nftaListElem|unix.NLA_F_NESTED, nil)
	b = appendAttr(b, nftaExprName, cString("target"))
	data := len(b)
	b = appendAttr(b, nftaExprData|unix.NLA_F_NESTED, nil)
	b = appendAttr(b, nftaTargetName, cString("NFQUEUE"))
	b = appendAttr(b, nftaTargetRev, be.AppendUint32(nil, nfqTargetRev))
	// struct xt_NFQ_info_v3 in host order, padded to xtables' 8 bytes.
	info := native.AppendUint16(nil, queue)
	info = native.AppendUint16(info, 1) // queues_total
	info = native.AppendUint16(info, nfqFlagBypass)
	b = appendAttr(b, nftaTargetInfo, append(info, 0, 0))
	for _, at := range []int{data, elem, exprs} { // innermost first
		native.PutUint16(b[at:], uint16(len(b)-at))
	}
	b = finish(b, start)
	return appendBatchMark(b, unix.NFNL_MSG_BATCH_END, seq+1)
}

// appendNetlinkHeader appends a netlink header whose length finish fills
// in; the port id 0 has the kernel fill in ours.
func appendNetlinkHeader(b []byte, kind, flags uint16, seq uint32) []byte {
	b = native.AppendUint32(b, 0)
	b = native.AppendUint16(b, kind)
	b = native.AppendUint16(b, flags)
	b = native.AppendUint32(b, seq)
	return native.AppendUint32(b, 0)
}

// appendBatchMark appends the begin or end of a batch for nf_tables.
func appendBatchMark(b []byte, kind uint16, seq uint32) []byte {
	start := len(b)
	b = appendNetlinkHeader(b, kind, unix.NLM_F_REQUEST, seq)
	b = append(b, unix.AF_UNSPEC, unix.NFNETLINK_V0)
	b = be.AppendUint16(b, unix.NFNL_SUBSYS_NFTABLES)
	return finish(b, start)
}

func cString(s string) []byte { return append([]byte(s), 0) }

// awaitAck reads until the answer to request seq.
func awaitAck(fd int, seq uint32) error {
	buf := make([]byte, 1<<16)
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		var answer *message
		perr := parseMessages(buf[:n], func(m message) {
			if m.ack && m.seq == seq {
				answer = &m
			}
		})
		switch {
		case perr != nil:
			return perr
		case answer != nil && answer.errno != 0:
			return answer.errno
		case answer != nil:
			return nil
		}
	}
}
