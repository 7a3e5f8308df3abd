package backup

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
)

type hasher struct{ hash.Hash }

func newHash() *hasher        { return &hasher{sha256.New()} }
func (h *hasher) hex() string { return hex.EncodeToString(h.Sum(nil)) }
