package endpoints

import (
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/session"
	"github.com/edgesession/edgesession/sessionstore"
)

// endWeakerSessions signs out user's sessions on this site that proved no
// second factor (but keep, which may be nil), once the user has one: a
// session someone got with the password alone, the reason many set a
// factor up, must not outlive it. A store without an index (there is no
// list to walk) keeps them; a store that fails is logged, the enrolment
// stands.
func (s *Server) endWeakerSessions(r *http.Request, user string, keep *session.Session) {
	ix := s.c.UserIndex
	if ix == nil {
		return
	}
	var kept sessionstore.Handle
	if keep != nil && keep.Saved {
		kept = s.c.Sessions.Key(keep.ID).Handle()
	}
	es, err := ix.ListUser(r.Context(), user)
	if err != nil {
		s.c.Sessions.LogStoreError(r, "listing the sessions a second factor ends", err)
		return
	}
	now := time.Now()
	var weak []sessionstore.Handle
	for _, e := range es {
		if e.Handle == kept || identity.HasMFA(e.Record.Amr) || s.c.Sessions.Expired(e.Record, now) || !s.c.Sessions.Accepts(r, e.Record) {
			continue
		}
		weak = append(weak, e.Handle)
	}
	if len(weak) == 0 {
		return
	}
	keys, err := ix.DeleteUser(r.Context(), user, weak...)
	for _, k := range keys {
		s.c.SessionDeleted(k)
	}
	if err != nil {
		s.c.Sessions.LogStoreError(r, "ending the sessions a second factor ends", err)
	}
	s.c.Logger.Info("sessions revoked", zap.String("user", user), zap.Int("revoked", len(keys)), zap.String("by", "second factor enrolled"), s.zapRemoteIP(r))
}
