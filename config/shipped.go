package config

import (
	"embed"
	"fmt"
	"slices"
)

//go:embed lite.yaml staging.yaml production.yaml
var shipped embed.FS

// shippedNames lists the configuration files shipped with the binary.
var shippedNames = []string{"lite", "staging", "production"}

// Shipped returns the contents of the shipped configuration file name
// (lite, staging or production). Use Parse to load it.
func Shipped(name string) ([]byte, error) {
	if !slices.Contains(shippedNames, name) {
		return nil, fmt.Errorf("unknown shipped config %q (want lite, staging or production)", name)
	}
	return shipped.ReadFile(name + ".yaml")
}
