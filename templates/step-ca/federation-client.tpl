{{- /*
  X.509 leaf template for federation client certificates, for step-ca 0.19 JWK provisioners.

  step-ca renders this file with Go text/template plus the sprig functions (env and expandenv
  removed). Template data used here:
    .Subject.CommonName  the token's sub claim
    .SANs                the token's sans claim, which step-ca has already matched against the
                         SANs in the CSR (a CSR without SANs is accepted)
    .Token               all token claims; the signature was verified before rendering
  The custom claim federation.extensions lists the two identity extensions (grant id first, peer
  id second) as {"id": "<dotted OID>", "value": "<base64 of the DER value>"}. The template copies
  them without knowing the OIDs, so the service alone decides what they contain.
*/ -}}
{{- if not (hasKey .Token "federation") }}
  {{- fail "token claim federation is missing" }}
{{- end }}
{{- $extensions := dig "extensions" list .Token.federation }}
{{- if ne (len $extensions) 2 }}
  {{- fail "token claim federation.extensions must list exactly two extensions" }}
{{- end }}
{
  "subject": {"commonName": {{ toJson .Subject.CommonName }}},
  "sans": {{ toJson .SANs }},
  "keyUsage": ["digitalSignature"],
  "extKeyUsage": ["clientAuth"],
  "extensions": [
  {{- range $index, $extension := $extensions }}
    {{- if $index }},{{ end }}
    {"id": {{ toJson $extension.id }}, "critical": false, "value": {{ toJson $extension.value }}}
  {{- end }}
  ]
}
