package store

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
)

// TestScramSecret checks the secret against RFC 7677's example exchange
// (user "user", password "pencil"): the server signature it implies and the
// client proof it accepts.
func TestScramSecret(t *testing.T) {
	t.Parallel()
	salt, _ := base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	secret := scramSecretSalt("pencil", salt, 4096)
	parts := strings.FieldsFunc(secret, func(r rune) bool { return r == '$' || r == ':' })
	if len(parts) != 5 || parts[0] != "SCRAM-SHA-256" || parts[1] != "4096" || parts[2] != "W22ZaJ0SNY7soEsUEjb6gQ==" {
		t.Fatalf("secret %q", secret)
	}
	stored, _ := base64.StdEncoding.DecodeString(parts[3])
	server, _ := base64.StdEncoding.DecodeString(parts[4])
	auth := "n=user,r=rOprNGfwEbeRWgbNEkqO," +
		"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096," +
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
	mac := func(key []byte) []byte { h := hmac.New(sha256.New, key); h.Write([]byte(auth)); return h.Sum(nil) }
	if got := base64.StdEncoding.EncodeToString(mac(server)); got != "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=" {
		t.Errorf("server signature %s", got)
	}
	proof, _ := base64.StdEncoding.DecodeString("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
	sig := mac(stored)
	key := make([]byte, len(proof))
	for i := range proof {
		key[i] = proof[i] ^ sig[i]
	}
	if sum := sha256.Sum256(key); !hmac.Equal(sum[:], stored) {
		t.Error("the RFC's client proof does not match the stored key")
	}
}
