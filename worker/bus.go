package worker

import (
	"context"
	"errors"
	"sync"
)

// ErrBusClosed is returned by Publish after Close.
var ErrBusClosed = errors.New("event bus closed")

// Bus is the worker's in-process event bus: one instance per process,
// created at bootstrap and passed to the parts that need it. It carries
// StepExecutionEvents to the runtimes that run handlers and
// StepExecutionCompletionEvents back.
//
// Every subscriber has a bounded buffer. Publishing waits until every
// subscriber has room (backpressure); it never drops an event. A publisher
// that cannot wait any longer gets its context's error back, so a lost
// event is always reported to the publisher.
type Bus struct {
	Executions  *Topic[StepExecutionEvent]
	Completions *Topic[StepExecutionCompletionEvent]
}

// NewBus returns a Bus with no subscribers.
func NewBus() *Bus {
	return &Bus{Executions: newTopic[StepExecutionEvent](), Completions: newTopic[StepExecutionCompletionEvent]()}
}

// Close closes both topics: every subscriber's channel is closed after the
// events already in its buffer, and later publishes fail with ErrBusClosed.
func (b *Bus) Close() {
	b.Executions.close()
	b.Completions.close()
}

// Topic is one typed stream of events with any number of subscribers.
type Topic[E any] struct {
	mu     sync.RWMutex
	subs   map[*subscription[E]]struct{}
	closed bool
}

// subscription is one subscriber. Its channel is closed only once no
// publisher is sending on it: publishers hold sending for reading while they
// send, and end takes it for writing after waking them through done.
type subscription[E any] struct {
	ch      chan E
	done    chan struct{}
	once    sync.Once
	sending sync.RWMutex
	ended   bool
}

func newTopic[E any]() *Topic[E] {
	return &Topic[E]{subs: map[*subscription[E]]struct{}{}}
}

// Subscribe registers a subscriber with a buffer of the given size (at
// least 1). It returns the channel to receive from and a function that
// unsubscribes (and closes the channel). After the bus is closed the
// channel is closed at once.
func (t *Topic[E]) Subscribe(buffer int) (<-chan E, func()) {
	sub := &subscription[E]{ch: make(chan E, max(buffer, 1)), done: make(chan struct{})}
	t.mu.Lock()
	closed := t.closed
	if !closed {
		t.subs[sub] = struct{}{}
	}
	t.mu.Unlock()
	if closed {
		sub.end()
		return sub.ch, func() {}
	}
	return sub.ch, func() {
		t.mu.Lock()
		delete(t.subs, sub)
		t.mu.Unlock()
		sub.end()
	}
}

// Publish delivers ev to every current subscriber, waiting while a
// subscriber's buffer is full. It returns ctx's error if ctx ends first (the
// event then reached only some subscribers, and the caller must treat it as
// not delivered), and ErrBusClosed after Close. A subscriber that
// unsubscribes while Publish waits for it is skipped.
func (t *Topic[E]) Publish(ctx context.Context, ev E) error {
	t.mu.RLock()
	if t.closed {
		t.mu.RUnlock()
		return ErrBusClosed
	}
	subs := make([]*subscription[E], 0, len(t.subs))
	for sub := range t.subs {
		subs = append(subs, sub)
	}
	t.mu.RUnlock()
	for _, sub := range subs {
		if err := sub.send(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}

// Subscribers counts the current subscribers.
func (t *Topic[E]) Subscribers() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.subs)
}

func (t *Topic[E]) close() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	subs := t.subs
	t.subs = map[*subscription[E]]struct{}{}
	t.mu.Unlock()
	for sub := range subs {
		sub.end()
	}
}

// send waits until the subscriber takes ev, it ends, or ctx ends.
func (s *subscription[E]) send(ctx context.Context, ev E) error {
	s.sending.RLock()
	defer s.sending.RUnlock()
	if s.ended {
		return nil
	}
	select {
	case s.ch <- ev:
		return nil
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// end wakes any publisher waiting on the subscriber, then closes its
// channel once they have left.
func (s *subscription[E]) end() {
	s.once.Do(func() { close(s.done) })
	s.sending.Lock()
	defer s.sending.Unlock()
	if !s.ended {
		s.ended = true
		close(s.ch)
	}
}
