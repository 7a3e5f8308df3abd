package workflows

import (
	enums "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/akosha/akosha/activities"
)

// Custom search attributes the runbooks set when the namespace has them (`akosha dev`
// registers them; elsewhere `temporal operator search-attribute create --name
// AkoshaScenario --type Keyword`, and so on): list runs with e.g.
// `temporal workflow list --query "AkoshaScenario='disk-failure' AND AkoshaOutcome='recovered'"`.
var (
	SearchScenario = temporal.NewSearchAttributeKeyKeyword(activities.SearchScenarioName)
	SearchShard    = temporal.NewSearchAttributeKeyInt64(activities.SearchShardName)
	SearchOutcome  = temporal.NewSearchAttributeKeyKeyword(activities.SearchOutcomeName)
	SearchRTO      = temporal.NewSearchAttributeKeyFloat64(activities.SearchRTOName)
)

// SearchAttributeTypes are the custom search attributes and their types, to register on
// a namespace.
var SearchAttributeTypes = map[string]enums.IndexedValueType{
	SearchScenario.GetName(): enums.INDEXED_VALUE_TYPE_KEYWORD,
	SearchShard.GetName():    enums.INDEXED_VALUE_TYPE_INT,
	SearchOutcome.GetName():  enums.INDEXED_VALUE_TYPE_KEYWORD,
	SearchRTO.GetName():      enums.INDEXED_VALUE_TYPE_DOUBLE,
}
