package template

import (
	"fmt"
	"slices"
	"strings"
)

// graph is the dependency graph of a step list. Nodes are step indexes; an edge
// i → j means step i depends on step j. Dependencies on unknown names are left out,
// repeated dependencies appear once, and a name declared twice resolves to its first
// declaration.
type graph struct {
	names []string
	first map[string]int
	deps  [][]int
}

// newGraph builds the dependency graph of steps.
func newGraph(steps []Step) *graph {
	g := &graph{
		names: make([]string, len(steps)),
		first: make(map[string]int, len(steps)),
		deps:  make([][]int, len(steps)),
	}
	for i, step := range steps {
		g.names[i] = step.Name
		if _, dup := g.first[step.Name]; !dup && step.Name != "" {
			g.first[step.Name] = i
		}
	}
	for i, step := range steps {
		for _, dep := range step.DependsOn {
			if j, ok := g.first[dep]; ok && !slices.Contains(g.deps[i], j) {
				g.deps[i] = append(g.deps[i], j)
			}
		}
	}
	return g
}

// namesOf maps step indexes to step names.
func (g *graph) namesOf(nodes []int) []string {
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = g.names[n]
	}
	return names
}

// Roots returns the names of the steps that depend on nothing, in declaration order.
func (d Definition) Roots() []string {
	var roots []string
	for _, step := range d.Steps {
		if len(step.DependsOn) == 0 {
			roots = append(roots, step.Name)
		}
	}
	return roots
}

// TopologicalOrder returns the step names ordered so that every step comes after the
// steps it depends on. Among the steps that are ready at the same time, the one
// declared first comes first, so the order is stable. It fails when a step name is
// declared twice, a dependency names an unknown step, or the steps form a cycle.
func (d Definition) TopologicalOrder() ([]string, error) {
	g := newGraph(d.Steps)
	for i, step := range d.Steps {
		j, named := g.first[step.Name]
		if !named {
			return nil, fmt.Errorf("steps[%d] has no name", i)
		}
		if j != i {
			return nil, fmt.Errorf("duplicate step name %q (steps[%d] and steps[%d])", step.Name, j, i)
		}
		for _, dep := range step.DependsOn {
			if _, ok := g.first[dep]; !ok {
				return nil, fmt.Errorf("step %q depends on unknown step %q", step.Name, dep)
			}
		}
	}
	order := g.kahn()
	if len(order) < len(d.Steps) {
		cycle := g.cycles()[0]
		return nil, fmt.Errorf("dependency cycle: %s", strings.Join(g.namesOf(cycle), " → "))
	}
	return g.namesOf(order), nil
}

// kahn returns the nodes in dependency order, always taking the lowest ready index
// next. Nodes on or behind a cycle are missing from the result.
func (g *graph) kahn() []int {
	waiting := make([]int, len(g.deps))
	dependents := make([][]int, len(g.deps))
	var ready []int
	for i, deps := range g.deps {
		waiting[i] = len(deps)
		for _, j := range deps {
			dependents[j] = append(dependents[j], i)
		}
		if len(deps) == 0 {
			ready = append(ready, i)
		}
	}
	order := make([]int, 0, len(g.deps))
	for len(ready) > 0 {
		next := ready[0]
		ready = ready[1:]
		order = append(order, next)
		for _, i := range dependents[next] {
			if waiting[i]--; waiting[i] == 0 {
				at, _ := slices.BinarySearch(ready, i)
				ready = slices.Insert(ready, at, i)
			}
		}
	}
	return order
}
