package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestSubmitAll checks the throughput phase's lean submitters against an
// HTTP server: every task is POSTed once with the same body, spread over
// the endpoints, and an answer other than 201 Created fails the round with
// the server's status and message.
func TestSubmitAll(t *testing.T) {
	const body = `{"namespace":"diamond_workflow","name":"diamond"}`
	var posts [2]atomic.Int32
	servers := make([]*httptest.Server, 2)
	urls := make([]string, 2)
	for i := range servers {
		servers[i] = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got, _ := io.ReadAll(r.Body)
			if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || string(got) != body {
				http.Error(w, "unexpected request", http.StatusBadRequest)
				return
			}
			posts[i].Add(1)
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"task_uuid":"…","steps":[]}`)
		}))
		defer servers[i].Close()
		urls[i] = servers[i].URL + "/v1/tasks"
	}
	if _, err := submitAll(context.Background(), http.DefaultClient, urls, []byte(body), 101, 4); err != nil {
		t.Fatal(err)
	}
	if a, b := posts[0].Load(), posts[1].Load(); a != 51 || b != 50 {
		t.Fatalf("POSTs per endpoint = %d, %d; want 51, 50", a, b)
	}

	_, err := submitAll(context.Background(), http.DefaultClient, urls, []byte(`{}`), 3, 2)
	if err == nil || !strings.Contains(err.Error(), "400 Bad Request: unexpected request") {
		t.Fatalf("error = %v, want the server's 400 and its message", err)
	}
}
