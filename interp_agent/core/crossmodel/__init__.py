"""Cross-model work on features: activation matching, validating matches with interventions, universality.

Above ``core.matching`` (the fingerprint matcher and the ``interp-agent.matches.v1`` format, which
these modules write and read) and the explanation corpus they probe with:

    sides         Side: a model, a hookpoint and the features read there; FeatureActivations
    harvest       probe sets, and one harvest pass per model for every side that reads it
    activations   match_activations / match_sides: correlation, mutual nearest, Hungarian, a null
    universality  how many SAE latents find a partner: seeds, layers, a fine-tune
    validate      validate_matches: the same intervention on both sides of each pair, graded
    compare       effect comparison and the grade ladder (similar < same_direction < equivalent)
    patch         patch-across: a left direction mapped into the right model's space
    render        validation.md
"""
