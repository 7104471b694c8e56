//go:build linux

package netdelay

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// From linux/netfilter/nfnetlink_queue.h and linux/netfilter.h.
const (
	msgPacket  = 0 // NFQNL_MSG_PACKET, kernel to userspace
	msgVerdict = 1 // NFQNL_MSG_VERDICT
	msgConfig  = 2 // NFQNL_MSG_CONFIG

	attrPacketHdr  = 1 // NFQA_PACKET_HDR: struct nfqnl_msg_packet_hdr
	attrVerdictHdr = 2 // NFQA_VERDICT_HDR: struct nfqnl_msg_verdict_hdr

	cfgAttrCmd    = 1 // NFQA_CFG_CMD: struct nfqnl_msg_config_cmd
	cfgAttrParams = 2 // NFQA_CFG_PARAMS: struct nfqnl_msg_config_params
	cfgAttrMaxLen = 3 // NFQA_CFG_QUEUE_MAXLEN: __be32
	cfgAttrMask   = 4 // NFQA_CFG_MASK: __be32, the flags being set
	cfgAttrFlags  = 5 // NFQA_CFG_FLAGS: __be32

	cmdBind  = 1 // NFQNL_CFG_CMD_BIND
	copyMeta = 1 // NFQNL_COPY_META: metadata only, no payload

	flagFailOpen = 1 << 0 // NFQA_CFG_F_FAIL_OPEN: accept, not drop, when the queue is full
	flagGSO      = 1 << 2 // NFQA_CFG_F_GSO: queue offloaded super-packets whole (we set it off)

	verdictDrop   = 0 // NF_DROP
	verdictAccept = 1 // NF_ACCEPT
)

const (
	nlmsgHdrLen  = unix.SizeofNlMsghdr // 16
	nfgenLen     = 4                   // struct nfgenmsg
	attrHdrLen   = unix.SizeofNlAttr   // 4
	verdictLen   = nlmsgHdrLen + nfgenLen + attrHdrLen + 8
	queueMsgType = unix.NFNL_SUBSYS_QUEUE << 8
)

var (
	native = binary.NativeEndian // netlink's own headers
	be     = binary.BigEndian    // the structs of nfnetlink_queue
)

func align4(n int) int { return (n + 3) &^ 3 }

// appendHeader appends a netlink header (its length filled in by
// finish) and the nfgenmsg that names the queue.
func appendHeader(b []byte, kind uint8, flags uint16, seq uint32, queue uint16) []byte {
	b = appendNetlinkHeader(b, queueMsgType|uint16(kind), unix.NLM_F_REQUEST|flags, seq)
	b = append(b, unix.AF_UNSPEC, unix.NFNETLINK_V0)
	return be.AppendUint16(b, queue)
}

// finish writes the length of the message that starts at start.
func finish(b []byte, start int) []byte {
	native.PutUint32(b[start:], uint32(len(b)-start))
	return b
}

// appendAttr appends one attribute, padded to four bytes.
func appendAttr(b []byte, typ uint16, data []byte) []byte {
	b = native.AppendUint16(b, uint16(attrHdrLen+len(data)))
	b = native.AppendUint16(b, typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// queueConfig is what a config message sets.
type queueConfig struct {
	bind   bool   // bind the queue to this socket
	maxLen uint32 // packets the kernel holds for us before it drops (or, fail-open, accepts)
	flags  uint32 // flagFailOpen, flagGSO
}

// appendConfig appends a config message for queue asking for an
// acknowledgement with seq. It always sets copy mode META.
func appendConfig(b []byte, seq uint32, queue uint16, c queueConfig) []byte {
	start := len(b)
	b = appendHeader(b, msgConfig, unix.NLM_F_ACK, seq, queue)
	if c.bind {
		// command, padding, protocol family (unused since Linux 3.8)
		b = appendAttr(b, cfgAttrCmd, []byte{cmdBind, 0, 0, 0})
	}
	b = appendAttr(b, cfgAttrParams, append(be.AppendUint32(nil, 0), copyMeta))
	b = appendAttr(b, cfgAttrMaxLen, be.AppendUint32(nil, c.maxLen))
	// The mask names the flags this message sets, to c.flags' values:
	// the others keep the kernel's defaults.
	b = appendAttr(b, cfgAttrMask, be.AppendUint32(nil, flagFailOpen|flagGSO))
	b = appendAttr(b, cfgAttrFlags, be.AppendUint32(nil, c.flags))
	return finish(b, start)
}

// appendVerdict appends the verdict for packet id of queue.
func appendVerdict(b []byte, queue uint16, id, verdict uint32) []byte {
	start := len(b)
	b = appendHeader(b, msgVerdict, 0, 0, queue)
	b = native.AppendUint16(b, attrHdrLen+8)
	b = native.AppendUint16(b, attrVerdictHdr)
	b = be.AppendUint32(b, verdict)
	b = be.AppendUint32(b, id)
	return finish(b, start)
}

// message is what the reader needs of one message from the kernel.
type message struct {
	packet bool   // a queued packet, with id
	id     uint32 // its packet id
	ack    bool   // an acknowledgement or error, for seq
	seq    uint32
	errno  unix.Errno // 0 for an acknowledgement
}

var errShort = errors.New("netdelay: truncated netlink message")

// parseMessages calls each for every message in the datagram b. Messages
// of other kinds are skipped; a malformed one ends the walk with an error.
func parseMessages(b []byte, each func(message)) error {
	for len(b) > 0 {
		if len(b) < nlmsgHdrLen {
			return errShort
		}
		n := int(native.Uint32(b))
		if n < nlmsgHdrLen || n > len(b) {
			return fmt.Errorf("netdelay: netlink message length %d of %d bytes", n, len(b))
		}
		m, err := parseMessage(native.Uint16(b[4:]), native.Uint32(b[8:]), b[nlmsgHdrLen:n])
		if err != nil {
			return err
		}
		if m.packet || m.ack {
			each(m)
		}
		b = b[min(align4(n), len(b)):]
	}
	return nil
}

func parseMessage(kind uint16, seq uint32, body []byte) (message, error) {
	switch kind {
	case unix.NLMSG_ERROR:
		if len(body) < 4 {
			return message{}, errShort
		}
		return message{ack: true, seq: seq, errno: unix.Errno(-int32(native.Uint32(body)))}, nil
	case queueMsgType | msgPacket:
		if len(body) < nfgenLen {
			return message{}, errShort
		}
		id, err := packetID(body[nfgenLen:])
		return message{packet: true, id: id}, err
	}
	return message{}, nil
}

// packetID finds NFQA_PACKET_HDR among attrs and returns its packet id.
func packetID(attrs []byte) (uint32, error) {
	for len(attrs) >= attrHdrLen {
		n := int(native.Uint16(attrs))
		typ := native.Uint16(attrs[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if n < attrHdrLen || n > len(attrs) {
			return 0, fmt.Errorf("netdelay: attribute length %d of %d bytes", n, len(attrs))
		}
		if typ == attrPacketHdr {
			if n < attrHdrLen+4 {
				return 0, errShort
			}
			return be.Uint32(attrs[attrHdrLen:]), nil
		}
		attrs = attrs[min(align4(n), len(attrs)):]
	}
	return 0, errors.New("netdelay: queued packet without a packet header")
}
