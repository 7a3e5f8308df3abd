package ingest

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/akosha/akosha/engine"
)

// Synthetic returns n made-up conversations for demos and benchmarks, the
// same ones for the same arguments. They pass Decode's rules:
//
//   - system ids from a fixed set of 8 ("claude-prod-1", "gpt-eval-2", ...),
//     some busier than others;
//   - conversation ids "syn-<seed>-<i>", unique within and across seeds;
//   - content of a few user and assistant turns about one of 12 topics, from
//     a few hundred bytes to a few KB;
//   - unit-norm embeddings clustered by topic, the clusters the same for
//     every seed;
//   - timestamps uniform over [now - days*24h, now], in UTC (all now if
//     days <= 0);
//   - metadata {"model":...,"turns":N,"topic":...,"tokens":N}.
func Synthetic(seed int64, n int, days int, now time.Time) []engine.Conversation {
	if n <= 0 {
		return nil
	}
	r := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	centroids := topicCentroids()
	var span time.Duration
	if days > 0 {
		span = time.Duration(days) * 24 * time.Hour
	}
	now = now.Round(0).UTC()
	prefix := "syn-" + strconv.FormatInt(seed, 10) + "-"

	out := make([]engine.Conversation, n)
	slab := make([]float32, n*engine.EmbeddingDim)
	var sb strings.Builder
	for i := range out {
		sys := pickSystem(r)
		ti := r.IntN(len(topics))
		turns := 1 + r.IntN(8)
		content := conversationText(r, &sb, &topics[ti], turns)

		emb := slab[i*engine.EmbeddingDim : (i+1)*engine.EmbeddingDim : (i+1)*engine.EmbeddingDim]
		noisyUnit(r, emb, centroids[ti])

		ts := now
		if span > 0 {
			ts = now.Add(-time.Duration(r.Int64N(int64(span) + 1)))
		}

		meta := make([]byte, 0, 96)
		meta = append(meta, `{"model":`...)
		meta = appendString(meta, sys.model)
		meta = append(meta, `,"turns":`...)
		meta = strconv.AppendInt(meta, int64(turns), 10)
		meta = append(meta, `,"topic":`...)
		meta = appendString(meta, topics[ti].name)
		meta = append(meta, `,"tokens":`...)
		meta = strconv.AppendInt(meta, int64(len(content)/4), 10)
		meta = append(meta, '}')

		out[i] = engine.Conversation{
			SystemID:       sys.id,
			ConversationID: prefix + strconv.Itoa(i),
			Content:        content,
			Embedding:      emb,
			Timestamp:      ts,
			Metadata:       meta,
		}
	}
	return out
}

type system struct {
	id, model string
	weight    int
}

var systems = [...]system{
	{"claude-prod-1", "claude-sonnet-4", 30},
	{"claude-prod-2", "claude-opus-4", 15},
	{"claude-eval-1", "claude-haiku-4", 8},
	{"gpt-prod-1", "gpt-4o", 20},
	{"gpt-eval-2", "gpt-4.1-mini", 7},
	{"gemini-prod-1", "gemini-2.5-pro", 10},
	{"llama-dev-1", "llama-3.3-70b", 5},
	{"mistral-staging-1", "mistral-large-2", 5},
}

func pickSystem(r *rand.Rand) *system {
	total := 0
	for i := range systems {
		total += systems[i].weight
	}
	x := r.IntN(total)
	for i := range systems {
		if x < systems[i].weight {
			return &systems[i]
		}
		x -= systems[i].weight
	}
	return &systems[len(systems)-1]
}

type topic struct {
	name  string
	nouns []string
	verbs []string
}

var topics = [...]topic{
	{"billing", []string{"invoice", "refund", "subscription", "payment method", "credit card", "tax receipt", "proration", "discount code", "statement", "plan upgrade"},
		[]string{"refund", "cancel", "update", "dispute", "reconcile", "export"}},
	{"kubernetes", []string{"pod", "deployment", "node pool", "ingress", "helm chart", "readiness probe", "namespace", "config map", "autoscaler", "container image"},
		[]string{"deploy", "scale", "roll back", "restart", "debug", "patch"}},
	{"sql-performance", []string{"query plan", "index", "join", "table scan", "partition", "vacuum job", "slow query log", "connection pool", "materialized view", "transaction"},
		[]string{"optimize", "rewrite", "analyze", "rebuild", "partition", "benchmark"}},
	{"travel", []string{"itinerary", "flight", "layover", "hotel booking", "train pass", "visa", "museum ticket", "rental car", "packing list", "travel insurance"},
		[]string{"book", "plan", "reschedule", "compare", "change", "cancel"}},
	{"cooking", []string{"sourdough starter", "risotto", "cast iron pan", "marinade", "oven", "spice blend", "pie crust", "stock", "chef's knife", "recipe"},
		[]string{"bake", "season", "simmer", "prepare", "substitute", "roast"}},
	{"python-debugging", []string{"stack trace", "virtual environment", "import error", "unit test", "generator", "dictionary", "decorator", "event loop", "type hint", "dependency"},
		[]string{"debug", "refactor", "install", "profile", "test", "trace"}},
	{"contracts", []string{"non-disclosure agreement", "indemnity clause", "termination notice", "liability cap", "renewal term", "signature page", "amendment", "governing law", "payment schedule", "exhibit"},
		[]string{"review", "negotiate", "draft", "sign", "amend", "terminate"}},
	{"fitness", []string{"training plan", "squat", "recovery day", "heart rate zone", "protein intake", "running shoe", "warm-up", "interval session", "stretching routine", "rest day"},
		[]string{"adjust", "schedule", "track", "increase", "shorten", "plan"}},
	{"astronomy", []string{"telescope", "eyepiece", "star chart", "nebula", "meteor shower", "exposure", "tracking mount", "light pollution map", "planet", "eclipse"},
		[]string{"observe", "photograph", "align", "calibrate", "locate", "focus"}},
	{"security-incident", []string{"access log", "API key", "firewall rule", "phishing email", "audit trail", "incident report", "compromised account", "MFA policy", "alert", "backup"},
		[]string{"rotate", "revoke", "investigate", "contain", "audit", "restore"}},
	{"marketing", []string{"landing page", "email campaign", "headline", "call to action", "audience segment", "ad budget", "product launch", "newsletter", "conversion rate", "brand voice"},
		[]string{"write", "test", "launch", "segment", "measure", "polish"}},
	{"customer-support", []string{"ticket", "escalation", "refund request", "reply template", "SLA", "knowledge base article", "chat transcript", "customer survey", "priority queue", "macro"},
		[]string{"triage", "escalate", "close", "assign", "answer", "summarize"}},
}

var adjectives = []string{"slow", "broken", "unexpected", "expensive", "outdated", "reliable", "confusing", "inconsistent", "risky", "simple", "noisy", "stable"}

// Sentence templates: %n is a noun and %v a verb of the topic, %a an
// adjective and %A an adjective with its article.
var (
	userTemplates = []string{
		"How do I %v the %n without breaking the %n?",
		"Can you explain why my %n is %a after I %v the %n?",
		"I need help with the %n; it seems %a since yesterday.",
		"What is the best way to %v %A %n?",
		"Our team wants to %v the %n before the %n review next week.",
		"Is it safe to %v the %n while the %n is still %a?",
		"Thanks. And what should I do about the %n?",
	}
	assistantTemplates = []string{
		"Start by checking the %n, because %A %n often causes this.",
		"You can %v the %n first and then %v the %n.",
		"In most cases the %n is %a when the %n has not been updated.",
		"Here is a short plan: %v the %n, compare it with the %n, and keep notes.",
		"If that does not work, try to %v the %n with a smaller %n.",
		"That approach is %a, but it depends on how often you %v the %n.",
		"Keep an eye on the %n afterwards; %A %n is an early warning sign.",
		"I would not %v the %n yet, since the %n looks %a.",
	}
)

// conversationText writes turns user and assistant exchanges about t.
func conversationText(r *rand.Rand, sb *strings.Builder, t *topic, turns int) string {
	sb.Reset()
	for range turns {
		sb.WriteString("User: ")
		for k := range 1 + r.IntN(2) {
			if k > 0 {
				sb.WriteByte(' ')
			}
			fillTemplate(r, sb, t, userTemplates[r.IntN(len(userTemplates))])
		}
		sb.WriteString("\nAssistant: ")
		for k := range 2 + r.IntN(3) {
			if k > 0 {
				sb.WriteByte(' ')
			}
			fillTemplate(r, sb, t, assistantTemplates[r.IntN(len(assistantTemplates))])
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}

func fillTemplate(r *rand.Rand, sb *strings.Builder, t *topic, tmpl string) {
	for i := 0; i < len(tmpl); i++ {
		if tmpl[i] != '%' || i+1 == len(tmpl) {
			sb.WriteByte(tmpl[i])
			continue
		}
		i++
		switch tmpl[i] {
		case 'n':
			sb.WriteString(t.nouns[r.IntN(len(t.nouns))])
		case 'v':
			sb.WriteString(t.verbs[r.IntN(len(t.verbs))])
		case 'a', 'A':
			adj := adjectives[r.IntN(len(adjectives))]
			if tmpl[i] == 'A' {
				if strings.ContainsRune("aeiou", rune(adj[0])) {
					sb.WriteString("an ")
				} else {
					sb.WriteString("a ")
				}
			}
			sb.WriteString(adj)
		}
	}
}

// topicCentroids returns one random unit vector per topic, fixed for all seeds.
func topicCentroids() [][]float64 {
	r := rand.New(rand.NewPCG(0x616b6f736861, 1))
	cs := make([][]float64, len(topics))
	for i := range cs {
		v := make([]float64, engine.EmbeddingDim)
		var norm float64
		for j := range v {
			v[j] = r.NormFloat64()
			norm += v[j] * v[j]
		}
		norm = math.Sqrt(norm)
		for j := range v {
			v[j] /= norm
		}
		cs[i] = v
	}
	return cs
}

// noisyUnit sets emb to centroid plus Gaussian noise of norm about 0.7,
// normalised: cosine about 0.8 to the centroid and about 0.67 within a topic.
func noisyUnit(r *rand.Rand, emb []float32, centroid []float64) {
	sigma := 0.7 / math.Sqrt(engine.EmbeddingDim)
	var v [engine.EmbeddingDim]float64
	var norm float64
	for j := range v {
		v[j] = centroid[j] + sigma*r.NormFloat64()
		norm += v[j] * v[j]
	}
	norm = math.Sqrt(norm)
	for j := range v {
		emb[j] = float32(v[j] / norm)
	}
}
