// Package store is Plenum's persistent state, kept in one SQLite file.
//
// What is stored:
//
//   - registered users: id, name, the SHA-1 hash of their client certificate,
//     comment, avatar texture, when they were last seen and in which channel
//     (for "remember channel"), and the channels they listen to;
//   - passwords, only as PBKDF2-HMAC-SHA384 hashes with a per-user random salt
//     and iteration count (in practice only SuperUser, id 0, has one);
//   - bans: the masked address prefix, the start and the duration, and the
//     reason, certificate hash and name as given (the server fills in the
//     name and hash of a ban by session only for a registered user).
//
// What is deliberately not stored, because the people in a plenary should
// leave as little behind as possible:
//
//   - IP addresses, except the masked prefix a ban needs to work;
//   - anything about unregistered users;
//   - text messages, connection logs, client versions or operating systems,
//     e-mail addresses from certificates, or any history of who spoke when.
//
// Durability: the database runs in WAL mode with synchronous=FULL, and every
// method that writes does so in one transaction that has committed before it
// returns, so an acknowledged write survives the process being killed (and,
// as far as the disk honours fsync, a power loss). secure_delete is on, so
// deleted rows (an unregistered user, an expired ban) are overwritten in the
// database file; an old copy can remain in the WAL file until the next
// checkpoint.
//
// All methods are safe for concurrent use. Writes inside one process are
// serialised by a mutex; reads run in parallel with them.
package store
