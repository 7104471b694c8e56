// Package cluster makes Plenum servers on several machines one server to
// their users, over NATS: each node announces its users' states, shows
// every other node's users in its tree, and relays voice to the nodes
// whose users hear it.
//
// Subjects, all under "plenum.<cluster>.":
//
//	hb.<node>            a heartbeat every second: the node is alive, and
//	                     its epoch (start time) tells a restart apart
//	bye.<node>           the node stops: remove its users now
//	sync.<node>          ask node to announce all of its users again
//	user.<node>.<sess>   a user's full state, or its departure, numbered
//	                     per node so that a late message never wins
//	voice.ch.<key>       normal speech in the channel with that key (a hash
//	                     of its path); only nodes whose users hear that
//	                     channel subscribe
//	voice.node.<node>    whispers and shouts to users of that node
//	cmd.<node>           a text message, move, mute or kick for users of
//	                     that node, checked by the actor's node
//
// A node's number (1..63) is claimed once, by name, in a JetStream
// key-value bucket with compare-and-set (claimNode), and its users'
// sessions are that number's block (server.SessionsPerNode), so sessions
// are unique across the cluster without a round trip at login.
package cluster
