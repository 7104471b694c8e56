module github.com/plenum-voice/plenum

go 1.26.8

require (
	github.com/BurntSushi/toml v1.6.0
	google.golang.org/protobuf v1.36.11
)
