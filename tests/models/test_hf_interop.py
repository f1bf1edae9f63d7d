"""A saved student is an ordinary Hugging Face checkpoint: Auto classes load it in a process that never imported
lawcat (trust_remote_code), it carries its generation config, its teacher is found portably (or where the caller
says), dtype / device_map / sharding mean what they mean in transformers, and foreign weight files load with a
warning while damaged ones are still refused."""
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

from lawcat import LawcatForCausalLM, load_teacher
from lawcat.models import CheckpointError, TeacherLoadError, TeacherMismatchError
from lawcat.models.checkpoint import ForeignCheckpointWarning, parse_shard_size
from lawcat.models.teacher import locate_source, portable_source
from tests.conftest import make_teacher, make_tokenizer, trained_student

REPO = Path(__file__).resolve().parents[2]



def _save_teacher(path, seed=0, dtype=None, generation=None):
    model = make_teacher("llama", seed=seed)
    if dtype is not None:
        model = model.to(dtype)
    if generation:
        for k, v in generation.items():
            setattr(model.generation_config, k, v)
    model.save_pretrained(path)
    make_tokenizer().save_pretrained(path)
    return path


def _logits(model, ids):
    with torch.no_grad():
        return model(ids).logits


IDS = torch.randint(4, 97, (2, 11), generator=torch.Generator().manual_seed(0))


# ---- Auto classes without `import lawcat` ------------------------------------------------------------------------
@pytest.mark.parametrize("merged", [True, False])
def test_auto_classes_load_in_a_fresh_process_without_import_lawcat(tmp_path, merged):
    teacher, _ = load_teacher(str(_save_teacher(tmp_path / "teacher")))
    student = trained_student(teacher)
    run = tmp_path / "run"
    student.save_pretrained(run, merged=merged)
    config = json.loads((run / "config.json").read_text())
    assert config["architectures"] == ["LawcatForCausalLM"]
    assert config["auto_map"] == {"AutoConfig": "modeling_lawcat.LawcatConfig",
                                  "AutoModelForCausalLM": "modeling_lawcat.LawcatForCausalLM"}
    assert "must be installed" in (run / "modeling_lawcat.py").read_text().replace("\n", " ")
    torch.save({"ids": IDS, "logits": _logits(student, IDS)}, tmp_path / "ref.pt")
    script = textwrap.dedent(f"""
        import sys, torch
        from transformers import AutoConfig, AutoModelForCausalLM
        assert "lawcat" not in sys.modules
        config = AutoConfig.from_pretrained({str(run)!r}, trust_remote_code=True)
        assert type(config).__name__ == "LawcatConfig"
        model = AutoModelForCausalLM.from_pretrained({str(run)!r}, trust_remote_code=True)
        ref = torch.load({str(tmp_path / 'ref.pt')!r})
        with torch.no_grad():
            assert torch.equal(model(ref["ids"]).logits, ref["logits"])
        print("OK", type(model).__name__)
    """)
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "OK LawcatForCausalLM" in r.stdout


def test_import_lawcat_after_transformers_registers_the_auto_classes(tmp_path):
    """Without trust_remote_code, `import lawcat` is what tells the Auto classes about the model type."""
    trained_student(make_teacher("llama")).save_pretrained(tmp_path / "m", merged=True)
    script = textwrap.dedent(f"""
        from transformers import AutoModelForCausalLM
        import lawcat
        print(type(AutoModelForCausalLM.from_pretrained({str(tmp_path / 'm')!r})).__name__)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path,
                       timeout=300)
    assert r.returncode == 0 and "LawcatForCausalLM" in r.stdout, r.stderr[-3000:]


def test_auto_classes_in_process_take_hf_arguments(tmp_path):
    """With lawcat imported, AutoModelForCausalLM hands over its hub arguments (ignored for a local folder) and
    honours dtype / device_map."""
    student = trained_student(make_teacher("llama"))
    student.save_pretrained(tmp_path / "m", merged=True)
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "m", dtype=torch.bfloat16, device_map="cpu",
                                                 trust_remote_code=True, local_files_only=True)
    assert isinstance(model, LawcatForCausalLM)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    with pytest.raises(TypeError, match="unexpected keyword argument.*attn_implementation"):
        LawcatForCausalLM.from_pretrained(tmp_path / "m", attn_implementation="sdpa")


# ---- generation_config.json --------------------------------------------------------------------------------------
def test_generation_config_is_the_teachers_and_is_used(tmp_path):
    teacher_dir = _save_teacher(tmp_path / "teacher", generation={"max_new_tokens": 4, "min_new_tokens": 4})
    teacher, _ = load_teacher(str(teacher_dir))
    run = tmp_path / "run"
    trained_student(teacher).save_pretrained(run)
    saved = json.loads((run / "generation_config.json").read_text())
    assert saved["max_new_tokens"] == 4 and saved["eos_token_id"] == teacher.config.eos_token_id
    loaded = LawcatForCausalLM.from_pretrained(run)
    assert loaded.generation_config.max_new_tokens == 4
    ids = IDS[:1]
    assert loaded.generate(ids, do_sample=False).shape[1] == ids.shape[1] + 4
    saved.update(max_new_tokens=2, min_new_tokens=2)  # an edited file is what loading uses
    (run / "generation_config.json").write_text(json.dumps(saved))
    assert LawcatForCausalLM.from_pretrained(run).generate(ids, do_sample=False).shape[1] == ids.shape[1] + 2


def test_generation_config_from_ids_when_the_model_has_none(tmp_path):
    student = trained_student(make_teacher("llama"))
    student.generation_config = None
    assert student.config.eos_token_id is not None
    student.save_pretrained(tmp_path / "m", merged=True)
    saved = json.loads((tmp_path / "m" / "generation_config.json").read_text())
    assert saved["eos_token_id"] == student.config.eos_token_id and saved["bos_token_id"] == student.config.bos_token_id


# ---- the teacher, recorded portably --------------------------------------------------------------------------------
def test_teacher_recorded_relative_to_root_and_found_after_a_move(tmp_path, monkeypatch):
    monkeypatch.setenv("LAWCAT_TEACHER_ROOT", str(tmp_path / "models"))
    teacher, _ = load_teacher(str(_save_teacher(tmp_path / "models" / "tiny" / "v1")))
    student = trained_student(teacher)
    run = tmp_path / "run"
    student.save_pretrained(run)
    assert json.loads((run / "config.json").read_text())["teacher_source"] == "tiny/v1"
    (tmp_path / "other").mkdir()
    shutil.move(tmp_path / "models", tmp_path / "other" / "models")  # another machine's layout
    monkeypatch.setenv("LAWCAT_TEACHER_ROOT", str(tmp_path / "other" / "models"))
    assert torch.equal(_logits(LawcatForCausalLM.from_pretrained(run), IDS), _logits(student, IDS))
    assert LawcatForCausalLM.from_pretrained(run, teacher="tiny/v1") is not None  # relative override, same root
    monkeypatch.delenv("LAWCAT_TEACHER_ROOT")
    with pytest.raises(TeacherLoadError, match="LAWCAT_TEACHER_ROOT"):
        LawcatForCausalLM.from_pretrained(run)
    moved = str(tmp_path / "other" / "models" / "tiny" / "v1")
    loaded = LawcatForCausalLM.from_pretrained(run, teacher=moved)  # an explicit override, fingerprint-checked
    assert torch.equal(_logits(loaded, IDS), _logits(student, IDS))
    wrong = str(_save_teacher(tmp_path / "wrong", seed=1))
    with pytest.raises(TeacherMismatchError, match="different teacher.*recorded as tiny/v1") as e:
        LawcatForCausalLM.from_pretrained(run, teacher=wrong)
    assert "\n" not in str(e.value)


def test_teacher_under_home_recorded_with_tilde(tmp_path, monkeypatch):
    monkeypatch.delenv("LAWCAT_TEACHER_ROOT", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    teacher, _ = load_teacher(str(_save_teacher(tmp_path / "home" / "models" / "t")))
    run = tmp_path / "run"
    trained_student(teacher).save_pretrained(run)
    assert json.loads((run / "config.json").read_text())["teacher_source"] == "~/models/t"
    assert LawcatForCausalLM.from_pretrained(run) is not None
    assert portable_source("default") == "default" and portable_source("random:tiny-llama") == "random:tiny-llama"
    assert portable_source("/elsewhere/t") == "/elsewhere/t" and locate_source("/elsewhere/t") == "/elsewhere/t"


def test_old_checkpoint_with_absolute_teacher_path_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("LAWCAT_TEACHER_ROOT", str(tmp_path))
    teacher_dir = _save_teacher(tmp_path / "teacher")
    teacher, _ = load_teacher(str(teacher_dir))
    student = trained_student(teacher)
    run = tmp_path / "run"
    student.save_pretrained(run)
    config = json.loads((run / "config.json").read_text())
    config["teacher_source"] = str(teacher_dir.resolve())  # what lawcat recorded before
    for key in ("architectures", "auto_map"):
        config.pop(key)
    (run / "config.json").write_text(json.dumps(config))
    (run / "generation_config.json").unlink()
    (run / "modeling_lawcat.py").unlink()
    monkeypatch.delenv("LAWCAT_TEACHER_ROOT")
    assert torch.equal(_logits(LawcatForCausalLM.from_pretrained(run), IDS), _logits(student, IDS))


def test_gguf_teacher_moved_away_is_found_in_the_conversion_cache(tmp_path, monkeypatch):
    """A GGUF teacher is recorded with its file sha256; when the file is gone, its dequantized copy in the cache
    (keyed by that sha256) stands in, still fingerprint-checked."""
    monkeypatch.setenv("LAWCAT_CACHE", str(tmp_path / "cache"))
    sha = "ab" * 32
    cached = _save_teacher(tmp_path / "cache" / "teachers" / sha[:16])
    (cached / "lawcat_source.json").write_text(json.dumps({"source": "/gone/t.gguf", "sha256": sha}))
    teacher, _ = load_teacher(str(cached))
    teacher.lawcat_source, teacher.lawcat_file_sha256 = "/gone/t.gguf", sha
    student = trained_student(teacher)
    student.save_pretrained(tmp_path / "run")
    loaded = LawcatForCausalLM.from_pretrained(tmp_path / "run")
    assert torch.equal(_logits(loaded, IDS), _logits(student, IDS))
    assert loaded.config.teacher_source == "/gone/t.gguf" and loaded.config.teacher_file_sha256 == sha


# ---- dtype and device_map ------------------------------------------------------------------------------------------
def _dtypes(model):
    return {p.dtype for p in model.parameters()}


def test_dtype_torch_dtype_and_auto(tmp_path):
    teacher, _ = load_teacher(str(_save_teacher(tmp_path / "t32")))
    run = tmp_path / "run"
    trained_student(teacher).save_pretrained(run)
    assert _dtypes(LawcatForCausalLM.from_pretrained(run)) == {torch.float32}
    assert _dtypes(LawcatForCausalLM.from_pretrained(run, dtype=torch.float32)) == {torch.float32}
    assert _dtypes(LawcatForCausalLM.from_pretrained(run, dtype=torch.bfloat16)) == {torch.bfloat16}
    assert _dtypes(LawcatForCausalLM.from_pretrained(run, torch_dtype="bfloat16")) == {torch.bfloat16}
    assert _dtypes(LawcatForCausalLM.from_pretrained(run, dtype="auto")) == {torch.float32}  # the teacher's
    with pytest.raises(ValueError, match="disagree"):
        LawcatForCausalLM.from_pretrained(run, dtype=torch.float32, torch_dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="not a torch dtype"):
        LawcatForCausalLM.from_pretrained(run, dtype="float33")

    bf16, _ = load_teacher(str(_save_teacher(tmp_path / "t16", dtype=torch.bfloat16)), dtype="auto")
    assert next(bf16.parameters()).dtype == torch.bfloat16
    run16 = tmp_path / "run16"
    trained_student(bf16).save_pretrained(run16)
    assert _dtypes(LawcatForCausalLM.from_pretrained(run16, dtype="auto")) == {torch.bfloat16}
    merged = tmp_path / "merged16"
    trained_student(make_teacher("mistral")).to(torch.bfloat16).save_pretrained(merged, merged=True)
    loaded = LawcatForCausalLM.from_pretrained(merged, torch_dtype="auto")
    assert _dtypes(loaded) == {torch.bfloat16} and torch.isfinite(_logits(loaded, IDS).float()).all()


def test_device_map(tmp_path):
    trained_student(make_teacher("llama")).save_pretrained(tmp_path / "m", merged=True)
    for device_map in ("cpu", "auto", torch.device("cpu"), {"": "cpu"}):
        model = LawcatForCausalLM.from_pretrained(tmp_path / "m", device_map=device_map)
        expected = "cuda" if device_map == "auto" and torch.cuda.is_available() else "cpu"
        assert {p.device.type for p in model.parameters()} == {expected}
    with pytest.raises(ValueError, match="one device"):
        LawcatForCausalLM.from_pretrained(tmp_path / "m", device_map={"model": "cpu", "lm_head": "cuda:0"})
    with pytest.raises(ValueError, match="one device"):
        LawcatForCausalLM.from_pretrained(tmp_path / "m", device_map="balanced")


# ---- save_pretrained's arguments -----------------------------------------------------------------------------------
def test_sharded_save_round_trips_with_a_checksum_per_shard(tmp_path):
    teacher = make_teacher("llama")
    student = trained_student(teacher)
    run = tmp_path / "run"
    student.save_pretrained(run, max_shard_size="8KB")
    index = json.loads((run / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 2 and not (run / "model.safetensors").exists()
    assert sorted(p.name for p in run.glob("model-*.safetensors")) == shards
    for name in shards:
        tensors = load_file(run / name)
        assert sum(t.numel() * t.element_size() for t in tensors.values()) <= 8000 or len(tensors) == 1
        with safe_open(str(run / name), framework="pt") as f:
            assert f.metadata()["lawcat_tensors_sha256"] == index["metadata"]["lawcat_shards_sha256"][name]
    loaded = LawcatForCausalLM.from_pretrained(run, teacher=teacher)
    assert torch.equal(_logits(loaded, IDS), _logits(student, IDS))

    # A shard from another save of the same layout is refused, as is a damaged one.
    other = tmp_path / "other"
    trained_student(teacher).save_pretrained(other, max_shard_size="8KB")
    good = (run / shards[0]).read_bytes()
    shutil.copy(other / shards[0], run / shards[0])
    with pytest.raises(CheckpointError, match="not the shard"):
        LawcatForCausalLM.from_pretrained(run, teacher=teacher)
    (run / shards[0]).write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        LawcatForCausalLM.from_pretrained(run, teacher=teacher)

    # Re-saving in the other layout removes the old one's files.
    student.save_pretrained(run)
    assert (run / "model.safetensors").is_file() and not list(run.glob("model-*"))
    assert not (run / "model.safetensors.index.json").exists()
    student.save_pretrained(run, max_shard_size=10**9)  # fits one file: no index, as transformers does
    assert not (run / "model.safetensors.index.json").exists()
    student.save_pretrained(run, merged=True, max_shard_size="50KB")
    assert not (run / "model.safetensors").exists()
    assert torch.equal(_logits(LawcatForCausalLM.from_pretrained(run), IDS), _logits(student, IDS))


def test_parse_shard_size():
    assert parse_shard_size(1234) == 1234 and parse_shard_size("5GB") == 5 * 10**9
    assert parse_shard_size("500MB") == 500 * 10**6 and parse_shard_size("2GiB") == 2 * 2**30
    for bad in ("lots", "0", -1):
        with pytest.raises(ValueError, match="max_shard_size"):
            parse_shard_size(bad)


def test_push_to_hub_and_unknown_arguments_refused(tmp_path):
    student = trained_student(make_teacher("llama"))
    with pytest.raises(CheckpointError, match=r"push_to_hub=True\) is not supported") as e:
        student.save_pretrained(tmp_path / "a", push_to_hub=True)
    assert "\n" not in str(e.value) and not (tmp_path / "a").exists()
    with pytest.raises(TypeError, match="unexpected keyword argument.*variant"):
        student.save_pretrained(tmp_path / "a", variant="fp16")
    with pytest.raises(CheckpointError, match="safetensors only"):
        student.save_pretrained(tmp_path / "a", safe_serialization=False)
    student.save_pretrained(tmp_path / "a", is_main_process=False)  # another rank under Trainer: writes nothing
    assert not (tmp_path / "a").exists()
    # Trainer's call: save_pretrained(dir, state_dict=..., is_main_process=True)
    student.save_pretrained(tmp_path / "b", state_dict=student.state_dict(), is_main_process=True, merged=True)
    assert torch.equal(_logits(LawcatForCausalLM.from_pretrained(tmp_path / "b"), IDS), _logits(student, IDS))


# ---- foreign and damaged weight files ------------------------------------------------------------------------------
def test_foreign_weight_file_loads_with_a_warning_corrupt_one_still_refused(tmp_path):
    teacher = make_teacher("llama")
    student = trained_student(teacher)
    run = tmp_path / "run"
    student.save_pretrained(run)
    weights = run / "model.safetensors"
    tensors = load_file(weights)
    save_file(tensors, str(weights), metadata={"format": "pt"})  # as transformers or another tool writes it
    with pytest.warns(ForeignCheckpointWarning, match="no lawcat checksum"):
        loaded = LawcatForCausalLM.from_pretrained(run, teacher=teacher)
    assert torch.equal(_logits(loaded, IDS), _logits(student, IDS))

    student.save_pretrained(run)
    with safe_open(str(weights), framework="pt") as f:
        digest = f.metadata()["lawcat_tensors_sha256"]
    tensors = {k: v + 1 if k == sorted(tensors)[0] else v for k, v in tensors.items()}
    save_file(tensors, str(weights), metadata={"format": "pt", "lawcat_tensors_sha256": digest})
    with pytest.raises(CheckpointError, match="corrupt"):
        LawcatForCausalLM.from_pretrained(run, teacher=teacher)
