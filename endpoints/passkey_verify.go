package endpoints

import (
	"net/http"

	"go.uber.org/zap"

	"github.com/edgesession/edgesession/identity"
	"github.com/edgesession/edgesession/pages"
)

// A passkey as the second step after a password, or to step up a session:
// <prefix>/passkey/verify, for the user of the step (the pending login, or
// the session); only that user's passkeys are offered and accepted.
//
//	GET  passkey/verify[?redirect=…]   options for the step's user's passkeys
//	POST passkey/verify[?redirect=…]   {"credential":…}: the step completed (amr + hwk mfa)

func (s *Server) passkeyVerifyOptions(w http.ResponseWriter, r *http.Request) error {
	st, err := s.currentStep(w, r)
	if err != nil {
		return ServiceUnavailable(w)
	}
	if st == nil {
		return pages.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "no login waiting for a second factor"})
	}
	rp, err := s.relyingParty(r)
	if err != nil {
		return s.relyingPartyError(w, r, err)
	}
	options, sd, err := rp.BeginLogin(r.Context(), st.User)
	return s.passkeyOptions(w, r, "passkey second step", st.User, options, sd, ceremonyVerify, err)
}

func (s *Server) passkeyVerify(w http.ResponseWriter, r *http.Request) error {
	if !s.sameOrigin(w, r) {
		return nil
	}
	req, ok := s.readPasskeyRequest(w, r)
	if !ok {
		return nil
	}
	st, err := s.currentStep(w, r)
	if err != nil {
		return ServiceUnavailable(w)
	}
	if st == nil {
		return pages.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "no login waiting for a second factor"})
	}
	sd, err := s.takeCeremony(w, r, ceremonyVerify, st.User)
	if err != nil {
		return s.ceremonyError(w, r, "passkey second step", st.User, err)
	}
	rp, err := s.relyingParty(r)
	if err != nil {
		return s.relyingPartyError(w, r, err)
	}
	if _, err := rp.FinishLogin(r.Context(), st.User, *sd, req.Credential); err != nil {
		return s.passkeyRefused(w, r, "passkey second step", st.User, err)
	}
	s.c.MFA.count("verified", "passkey")
	s.c.Logger.Debug("passkey second step proved", zap.String("user", st.User), s.zapRemoteIP(r))
	return s.completeStep(w, r, st, identity.AmrHardware)
}
