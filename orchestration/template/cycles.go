package template

import "slices"

// cycles returns one dependency cycle for every strongly connected component of g
// that contains one, ordered by their first node. Each cycle starts and ends with the
// lowest step index of its component and follows dependency edges, so a → b means
// "a depends on b". A step that depends on itself yields the cycle [a, a].
func (g *graph) cycles() [][]int {
	var cycles [][]int
	for _, component := range g.components() {
		start := slices.Min(component)
		if len(component) == 1 && !slices.Contains(g.deps[start], start) {
			continue
		}
		cycles = append(cycles, g.shortestCycle(start, component))
	}
	slices.SortFunc(cycles, func(a, b []int) int { return a[0] - b[0] })
	return cycles
}

// shortestCycle finds, breadth first, the shortest path of dependency edges from
// start back to start that stays inside component. Edges are explored in dependsOn
// order, which makes the result deterministic.
func (g *graph) shortestCycle(start int, component []int) []int {
	parent := make(map[int]int, len(component))
	queue := []int{start}
	for len(queue) > 0 {
		node := queue[0]
		queue = queue[1:]
		for _, dep := range g.deps[node] {
			if dep == start {
				return append(pathTo(parent, start, node), start)
			}
			_, seen := parent[dep]
			if !seen && slices.Contains(component, dep) {
				parent[dep] = node
				queue = append(queue, dep)
			}
		}
	}
	return nil // unreachable: every node of a component reaches every other
}

// pathTo rebuilds the path from start to node from the breadth-first parents.
func pathTo(parent map[int]int, start, node int) []int {
	path := []int{node}
	for node != start {
		node = parent[node]
		path = append(path, node)
	}
	slices.Reverse(path)
	return path
}

// components returns the strongly connected components of g (Tarjan's algorithm).
func (g *graph) components() [][]int {
	t := &tarjan{
		g:       g,
		index:   make([]int, len(g.deps)),
		low:     make([]int, len(g.deps)),
		onStack: make([]bool, len(g.deps)),
	}
	for i := range t.index {
		t.index[i] = -1
	}
	for node := range g.deps {
		if t.index[node] < 0 {
			t.visit(node)
		}
	}
	return t.components
}

// tarjan holds the state of one run of Tarjan's strongly connected components
// algorithm.
type tarjan struct {
	g          *graph
	index      []int // visit order of each node, -1 when not yet visited
	low        []int // lowest visit order reachable from the node's subtree
	onStack    []bool
	stack      []int
	next       int
	components [][]int
}

// visit explores node depth first and emits its component when node is its root.
func (t *tarjan) visit(node int) {
	t.index[node], t.low[node] = t.next, t.next
	t.next++
	t.stack = append(t.stack, node)
	t.onStack[node] = true
	for _, dep := range t.g.deps[node] {
		switch {
		case t.index[dep] < 0:
			t.visit(dep)
			t.low[node] = min(t.low[node], t.low[dep])
		case t.onStack[dep]:
			t.low[node] = min(t.low[node], t.index[dep])
		}
	}
	if t.low[node] != t.index[node] {
		return
	}
	var component []int
	for {
		top := t.stack[len(t.stack)-1]
		t.stack = t.stack[:len(t.stack)-1]
		t.onStack[top] = false
		component = append(component, top)
		if top == node {
			break
		}
	}
	t.components = append(t.components, component)
}
