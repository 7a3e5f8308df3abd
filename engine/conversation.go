package engine

import (
	"encoding/json"
	"time"
)

// EmbeddingDim is the length of every hot-tier embedding vector.
const EmbeddingDim = 384

// Conversation is one conversation as it is ingested into the hot tier.
// ContentHash is computed by the engine (hex SHA-256 of Content) and ignored on input.
type Conversation struct {
	SystemID       string          `json:"system_id"`
	ConversationID string          `json:"conversation_id"`
	Content        string          `json:"content"`
	Embedding      []float32       `json:"embedding"`
	Timestamp      time.Time       `json:"timestamp"`
	Metadata       json.RawMessage `json:"metadata,omitempty"`
	ContentHash    string          `json:"content_hash,omitempty"`
}
