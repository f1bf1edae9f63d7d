"""analysis: what a trained student does inside, drawn as PNGs (`lawcat viz`).

    attention_maps  the teacher's softmax weights and the student's implied LAWCAT weights at one layer and head
    needle_share    each head's share of its normalized readout that comes from a passkey needle
    gate_memory     how long the gates remember: half-lives per key dimension, the needle's retention and crowding
    transfer_error  each layer's error against softmax attention on the same inputs, by token position
    lm_drift        whether a student still models text: next-token loss and KL to its teacher, by position
    prompts         the passkey prompt these read, with the needle's token span
    plots           the figures (matplotlib's object API, Agg; nothing global is switched)
    figures         load, compute, draw, summarize: the functions behind `lawcat viz`
    cli             `lawcat viz`'s parser and dispatch (torch-free until a view runs)
    errors          AnalysisError

Nothing here is imported by `import lawcat`; each module imports torch and transformers itself.
"""
