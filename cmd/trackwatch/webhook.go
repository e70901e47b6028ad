package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v7"
)

// webhook posts messages as JSON to one URL. It is safe for concurrent use.
type webhook struct {
	url    string
	client *http.Client
	// retryFor bounds the time spent on one message, retries included.
	retryFor time.Duration
	// firstWait is the wait before the first retry; later waits grow 1.5 times each (with ±50 %
	// jitter), up to maxWait.
	firstWait, maxWait time.Duration
	logf               func(format string, args ...any)
}

// errRefused marks an answer that retrying cannot change (a 4xx other than 408 and 429).
var errRefused = errors.New("the webhook refused the message")

// Post sends m and waits for a 2xx answer. A network error, a timeout and the answers 408, 429 and
// 5xx are retried with exponential backoff (cenkalti/backoff; a 429's or 503's Retry-After in
// seconds is honoured) until retryFor has passed since the first attempt or ctx ends; any other
// answer ends the attempts at once with an error wrapping errRefused. Errors never contain the
// URL's path or query, where webhook services keep their secret.
func (h *webhook) Post(ctx context.Context, m Message) error {
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encoding the message: %w", err)
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = h.firstWait, h.maxWait
	attempt := 0
	_, err = backoff.Retry(ctx, func() (struct{}, error) {
		attempt++
		return struct{}{}, h.try(ctx, body)
	}, backoff.WithBackOff(b), backoff.WithMaxElapsedTime(h.retryFor), backoff.WithNotify(func(err error, wait time.Duration) {
		h.logf("posting to %s failed (attempt %d): %v; retrying in %s", redactURL(h.url), attempt, err, wait.Round(time.Millisecond))
	}))
	if err != nil {
		// RetryError says why it stopped and wraps the last attempt's error.
		return fmt.Errorf("after %d attempts: %w", attempt, err)
	}
	return nil
}

// try makes one attempt.
func (h *webhook) try(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return backoff.Permanent(redactErr(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "trackwatch")
	resp, err := h.client.Do(req)
	if err != nil {
		return redactErr(err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	err = fmt.Errorf("%s: %q", resp.Status, bytes.TrimSpace(text))
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s >= 0 {
			return backoff.RetryAfter(time.Duration(s)*time.Second, err)
		}
		return err
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500:
		return err
	}
	return backoff.Permanent(fmt.Errorf("%w: %w", errRefused, err))
}

// redactURL is raw without its path, query and user information: "https://hooks.slack.com/…".
// Webhook services (Slack, Mattermost, Discord) put the secret in the path.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "the webhook"
	}
	s := u.Scheme + "://" + u.Host
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		s += "/…"
	}
	return s
}

// redactErr takes the URL out of the *url.Error that net/http returns.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s %s: %w", ue.Op, redactURL(ue.URL), ue.Err)
	}
	return err
}
